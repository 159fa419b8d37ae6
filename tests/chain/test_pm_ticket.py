"""Ticket values, their JSON form, and signing."""

import json

import pytest
from eth_account import Account

from chain import InvalidSignature, Ticket, recover_signer, sign_ticket, ticket_hash, verify_signature
from chain.signature import SECP256K1_HALF_N

KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32


def sample_ticket(**overrides) -> Ticket:
    fields = dict(
        recipient="0x73aed7b5deb30222fa896f399d46cc99c7bee57f",
        sender=Account.from_key(KEY).address,
        face_value=2**200 + 7,  # above 2**53: must survive JSON as a string
        win_prob=2**255,
        sender_nonce=42,
        recipient_rand_hash="0x" + "ab" * 32,
        creation_round=9,
        creation_round_block_hash=bytes(range(32)),
    )
    fields.update(overrides)
    return Ticket(**fields)


def test_fields_are_normalised():
    t = sample_ticket()
    assert t.recipient == "0x73AEd7b5dEb30222fa896f399d46cC99c7BEe57F"
    assert t.recipient_rand_hash == bytes.fromhex("ab" * 32)
    assert sample_ticket(face_value=str(2**200 + 7)) == t


def test_dict_round_trip_through_json():
    t = sample_ticket()
    data = json.loads(json.dumps(t.to_dict()))
    assert data["face_value"] == str(2**200 + 7)
    assert data["recipient_rand_hash"] == "0x" + "ab" * 32
    assert Ticket.from_dict(data) == t
    assert ticket_hash(Ticket.from_dict(data)) == t.hash


@pytest.mark.parametrize(
    "field, value",
    [("face_value", -1), ("win_prob", 2**256), ("recipient", "0x1234"), ("recipient_rand_hash", b"\x00" * 31)],
)
def test_bad_fields_are_refused(field, value):
    with pytest.raises(ValueError):
        sample_ticket(**{field: value})


def test_sign_and_recover():
    t = sample_ticket()
    sig = sign_ticket(t, KEY)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_HALF_N
    assert recover_signer(t, sig) == t.sender
    assert recover_signer(t.hash, sig) == t.sender
    assert verify_signature(t.sender, t, sig)


def test_signature_binds_every_field():
    t = sample_ticket()
    sig = sign_ticket(t, KEY)
    assert not verify_signature(t.sender, sample_ticket(sender_nonce=43), sig)
    assert not verify_signature(t.sender, sample_ticket(creation_round=10), sig)
    assert not verify_signature(t.sender, t, sign_ticket(t, OTHER_KEY))


def test_verify_is_false_not_raising_for_malformed():
    t = sample_ticket()
    assert not verify_signature(t.sender, t, b"\x01" * 65)
    with pytest.raises(InvalidSignature, match="non-zero"):
        recover_signer(t, bytes(32) + b"\x01" * 32 + b"\x1b")
