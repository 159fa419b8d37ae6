"""Byte-compatibility with go-livepeer: every vector in pm-vectors.json."""

import pytest

from chain import InvalidSignature, Ticket, aux_data, is_winning, recipient_rand_hash, recover_signer, ticket_hash
from chain.codec import ZERO_ADDRESS
from chain.signature import SECP256K1_N
from chain.winning import win_draw


def vector_ticket(case: dict) -> Ticket:
    return Ticket(
        recipient=case.get("recipient", ZERO_ADDRESS),
        sender=case.get("sender", ZERO_ADDRESS),
        face_value=case.get("face_value", 0),
        win_prob=case.get("win_prob", 0),
        sender_nonce=case.get("sender_nonce", 0),
        recipient_rand_hash=case.get("recipient_rand_hash", "00" * 32),
        creation_round=case.get("creation_round", 0),
        creation_round_block_hash=case.get("creation_round_block_hash", "00" * 32),
    )


def test_ticket_hash_vectors(vectors):
    assert len(vectors["ticket_hash"]) == 7
    for case in vectors["ticket_hash"]:
        assert ticket_hash(vector_ticket(case)).hex() == case["hash"], case


def test_aux_data_vectors(vectors):
    assert len(vectors["aux_data"]) == 4
    for case in vectors["aux_data"]:
        assert aux_data(vector_ticket(case)).hex() == case["aux_data"], case


def test_signature_vector_recovers(vectors):
    v = vectors["signature"]
    signer = recover_signer(bytes.fromhex(v["message"]), bytes.fromhex(v["sig"]))
    assert signer.lower() == "0x" + v["address"].lower()


def test_signature_vector_high_s_twin_rejected(vectors):
    """(r, n - s, v ^ 1) recovers the same key in lax code; it must be refused."""
    v = vectors["signature"]
    sig = bytes.fromhex(v["sig"])
    high_s = SECP256K1_N - int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + high_s.to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(InvalidSignature, match="secp256k1n/2"):
        recover_signer(bytes.fromhex(v["message"]), twin)


@pytest.mark.parametrize("v_byte", [0, 1, 26, 29, 255])
def test_signature_vector_bad_v_rejected(vectors, v_byte):
    v = vectors["signature"]
    sig = bytes.fromhex(v["sig"])[:64] + bytes([v_byte])
    with pytest.raises(InvalidSignature, match="v must be 27 or 28"):
        recover_signer(bytes.fromhex(v["message"]), sig)


@pytest.mark.parametrize("length", [0, 64, 66])
def test_signature_vector_bad_length_rejected(vectors, length):
    v = vectors["signature"]
    sig = (bytes.fromhex(v["sig"]) + b"\x00")[:length]
    with pytest.raises(InvalidSignature, match="65 bytes"):
        recover_signer(bytes.fromhex(v["message"]), sig)


def test_winning_vector(vectors):
    w = vectors["winning"]
    sig, rand = w["sig_ascii"].encode(), w["recipient_rand"]
    draw = int(w["keccak_sig_rand"], 16)
    assert recipient_rand_hash(rand).hex() == w["recipient_rand_hash"]
    assert win_draw(sig, rand) == draw
    assert is_winning(sig, rand, draw + 1)
    assert not is_winning(sig, rand, draw)
    assert not is_winning(sig, rand, 0)
