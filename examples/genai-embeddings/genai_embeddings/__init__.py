"""text-embedding: a pipeline plugin for genai-network."""
