"""The worker side: a BERT-family encoder, its last hidden states mean-pooled over the
tokens and L2-normalised (as sentence-transformers' all-MiniLM-L6-v2 is used)."""

from tasks.messages import Output
from workers.pipelines.base import Pipeline, torch_dtype

from genai_embeddings.spec import EmbeddingRequest


class TextEmbedding(Pipeline):

    def load(self, model_path: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModel.from_pretrained(
            model_path, dtype=torch_dtype(self.device)).to(self.device).eval()

    def run(self, params: EmbeddingRequest, inputs, on_step):
        import torch

        batch = self.tokenizer(params.input, return_tensors="pt", truncation=True).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"][..., None].float()
        vector = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)[0]
        on_step(1, 1)
        body = {"embedding": vector.cpu().tolist(), "dimensions": vector.shape[0]}
        return [Output.from_answer(body, params.seed or 0)]

    def smoke(self) -> list[Output]:
        return self.run(EmbeddingRequest(input="smoke", seed=0), {}, lambda step, total: None)
