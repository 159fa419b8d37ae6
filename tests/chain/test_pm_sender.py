"""The gateway's side: nonces, ticket counts, signed payments."""

import json
import threading

import pytest

from chain import MemoryNonceSource, Payment, TicketSender, TooManyTickets, new_ticket_params, recover_signer

SECRET = b"s" * 32
GATEWAY_KEY = "0x" + "33" * 32
RECIPIENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def params_for(sender: str, seed: int = 1, face_value: int = 1_000, win_prob: int = 2**255):
    return new_ticket_params(
        SECRET,
        recipient=RECIPIENT,
        sender=sender,
        face_value=face_value,
        win_prob=win_prob,  # EV 500 wei
        expiration_block=100,
        creation_round=3,
        creation_round_block_hash=b"\x03" * 32,
        seed=seed,
    )


def test_nonces_increase_per_recipient_and_rand_hash():
    source = MemoryNonceSource()
    h1, h2 = b"\x01" * 32, b"\x02" * 32
    assert source.reserve(RECIPIENT, h1, 3) == 1
    assert source.reserve(RECIPIENT, h1, 2) == 4
    assert source.reserve(RECIPIENT, h2, 1) == 1
    assert source.reserve(RECIPIENT.lower(), h1, 1) == 6  # address spelling does not split keys


def test_nonces_unique_across_threads():
    source, firsts = MemoryNonceSource(), []
    threads = [threading.Thread(target=lambda: firsts.append(source.reserve(RECIPIENT, b"\x01" * 32, 2)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(firsts) == list(range(1, 17, 2))


def test_pay_covers_the_fee_with_signed_tickets():
    sender = TicketSender(GATEWAY_KEY)
    params = params_for(sender.address)
    payment = sender.pay(params, fee=1_201)  # EV 500 each: 3 tickets
    assert [n for n, _ in payment.tickets] == [1, 2, 3]
    assert payment.ev == 1_500 >= 1_201
    for st in payment.signed_tickets():
        assert recover_signer(st.ticket, st.sig) == sender.address
        assert st.ticket.face_value == params.face_value
    assert [n for n, _ in sender.pay(params, fee=1).tickets] == [4]


def test_injected_nonce_source_is_used():
    class Recorded:
        calls = []

        def reserve(self, recipient, recipient_rand_hash, count):
            self.calls.append((recipient, recipient_rand_hash, count))
            return 100

    source = Recorded()
    sender = TicketSender(GATEWAY_KEY, nonces=source)
    params = params_for(sender.address)
    payment = sender.issue(params, 2)
    assert [n for n, _ in payment.tickets] == [100, 101]
    assert source.calls == [(RECIPIENT, params.recipient_rand_hash, 2)]


def test_zero_fee_pays_nothing():
    sender = TicketSender(GATEWAY_KEY)
    assert sender.pay(params_for(sender.address), fee=0).tickets == ()


def test_too_many_tickets_refused():
    sender = TicketSender(GATEWAY_KEY, max_tickets=10)
    with pytest.raises(TooManyTickets):
        sender.pay(params_for(sender.address), fee=500 * 11)


def test_payment_dict_round_trip_through_json():
    sender = TicketSender(GATEWAY_KEY)
    payment = sender.issue(params_for(sender.address), 2)
    again = Payment.from_dict(json.loads(json.dumps(payment.to_dict())))
    assert again == payment
    assert again.signed_tickets() == payment.signed_tickets()
