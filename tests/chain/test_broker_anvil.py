"""The TicketBroker on a real anvil, through the web3 client."""

import pytest

from chain import BrokerError, GasPriceTooHigh, Ticket, TicketBroker, TransactionReverted, ticket_hash
from devstack.devchain import DEV_ROUND_LENGTH, DEV_UNLOCK_PERIOD, deploy_dev_contracts, fund_gateway, mine
from chain.signature import SECP256K1_N

from devstack.chain import GATEWAY_KEY
from devstack.devchain import ETHER

FACE = 10**15


def balance(broker: TicketBroker, address: str) -> int:
    return broker.w3.eth.get_balance(address)


def replace(ticket: Ticket, **changes) -> Ticket:
    return Ticket(**{**ticket.__dict__, **changes})


def test_deploy_and_hash_agree(broker, make_params, sign_tickets):
    assert broker.w3.eth.get_code(broker.address) and broker.w3.eth.get_code(broker.rounds_address)
    assert broker.ticket_validity_period() == 2 and broker.unlock_period() == DEV_UNLOCK_PERIOD
    ticket, _, _ = sign_tickets(make_params())[0]
    assert broker.onchain_ticket_hash(ticket) == ticket_hash(ticket)
    bare = replace(ticket, creation_round=0, creation_round_block_hash=bytes(32))  # empty auxData
    assert broker.onchain_ticket_hash(bare) == ticket_hash(bare)


def test_fund_deposit_and_reserve(anvil, broker, gateway_address):
    gateway_broker = fund_gateway(anvil.url, broker.address, GATEWAY_KEY, deposit=3 * ETHER, reserve=ETHER)
    info = gateway_broker.sender_info()
    assert (info.deposit, info.reserve, info.withdraw_round) == (3 * ETHER, ETHER, 0)
    receipt = gateway_broker.fund_deposit(5)
    assert gateway_broker.events(receipt, "DepositFunded") == [{"sender": gateway_address, "amount": 5}]
    receipt = gateway_broker.fund_reserve(7)
    assert gateway_broker.events(receipt, "ReserveFunded") == [{"reserveHolder": gateway_address, "amount": 7}]
    assert broker.sender_info(gateway_address).deposit == 3 * ETHER + 5


def test_winning_ticket_pays_exactly_the_face_value(gateway_broker, redeemer, make_params, sign_tickets, operator_address):
    ticket, sig, rand = sign_tickets(make_params(face_value=FACE))[0]
    before = balance(redeemer, operator_address)
    receipt = redeemer.redeem(ticket, sig, rand)
    assert balance(redeemer, operator_address) - before == FACE
    (redemption,) = redeemer.redemptions(receipt)
    assert redemption.ticket == ticket and redemption.recipient_rand == rand
    assert redeemer.events(receipt, "WinningTicketTransfer") == [
        {"sender": ticket.sender, "recipient": operator_address, "amount": FACE}
    ]
    assert redeemer.is_used(ticket)
    assert gateway_broker.sender_info().deposit == ETHER - FACE
    assert redeemer.redemption_events(recipient=operator_address) == [redemption]


def test_replay_reverts(gateway_broker, redeemer, make_params, sign_tickets):
    ticket, sig, rand = sign_tickets(make_params())[0]
    redeemer.redeem(ticket, sig, rand)
    with pytest.raises(TransactionReverted, match="ticket is used"):
        redeemer.redeem(ticket, sig, rand)


def test_losing_ticket_reverts(gateway_broker, redeemer, make_params, sign_tickets):
    ticket, sig, rand = sign_tickets(make_params(win_prob=0))[0]
    with pytest.raises(TransactionReverted, match="ticket did not win"):
        redeemer.redeem(ticket, sig, rand)


def test_expired_round_reverts(anvil, gateway_broker, redeemer, make_params, sign_tickets):
    ticket, sig, rand = sign_tickets(make_params())[0]
    mine(anvil.url, 2 * DEV_ROUND_LENGTH)
    with pytest.raises(TransactionReverted, match="ticket is expired"):
        redeemer.redeem(ticket, sig, rand)


def test_wrong_round_block_hash_reverts(gateway_broker, redeemer, make_params, sign_tickets):
    params = make_params(creation_round_block_hash=b"\x01" * 32)
    ticket, sig, rand = sign_tickets(params)[0]
    with pytest.raises(TransactionReverted, match="creationRoundBlockHash invalid"):
        redeemer.redeem(ticket, sig, rand)


def test_wrong_rand_reverts(gateway_broker, redeemer, make_params, sign_tickets):
    ticket, sig, rand = sign_tickets(make_params())[0]
    with pytest.raises(TransactionReverted, match="recipientRand does not match"):
        redeemer.redeem(ticket, sig, rand + 1)


def test_contract_refuses_malleable_and_bad_v_signatures(gateway_broker, redeemer, make_params, sign_tickets):
    ticket, sig, rand = sign_tickets(make_params())[0]
    high_s = (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    for bad in (sig[:32] + high_s + bytes([55 - sig[64]]), sig[:64] + bytes([sig[64] - 27])):
        with pytest.raises(TransactionReverted, match="invalid signature"):
            redeemer.redeem(ticket, bad, rand)
    with pytest.raises(TransactionReverted, match="INVALID_SIGNATURE_LENGTH"):
        redeemer.redeem(ticket, sig[:64], rand)
    redeemer.redeem(ticket, sig, rand)  # the genuine one still works


def test_batch_redeem_skips_bad_tickets(gateway_broker, redeemer, make_params, sign_tickets, operator_address):
    good = sign_tickets(make_params(face_value=FACE), 3)
    used = sign_tickets(make_params(face_value=FACE))[0]
    redeemer.redeem(*used)
    losing = sign_tickets(make_params(win_prob=0))[0]
    before = balance(redeemer, operator_address)
    result = redeemer.batch_redeem([good[0], used, good[1], losing, good[2]])
    assert result.refused == [(1, "ticket is used"), (3, "ticket did not win")]
    assert [r.ticket for r in result.redeemed] == [t for t, _, _ in good]
    assert balance(redeemer, operator_address) - before == 3 * FACE
    assert result.receipt["status"] == 1


def test_batch_of_only_bad_tickets_sends_nothing(gateway_broker, redeemer, make_params, sign_tickets):
    losing = sign_tickets(make_params(win_prob=0))[0]
    nonce = redeemer.w3.eth.get_transaction_count(redeemer.account)
    result = redeemer.batch_redeem([losing])
    assert result.receipt is None and result.refused == [(0, "ticket did not win")]
    assert redeemer.w3.eth.get_transaction_count(redeemer.account) == nonce


def test_reserve_pays_when_deposit_runs_out(anvil, broker, redeemer, make_params, sign_tickets, operator_address):
    gateway_broker = fund_gateway(anvil.url, broker.address, GATEWAY_KEY, deposit=400, reserve=1_000)
    tickets = sign_tickets(make_params(face_value=1_000), 3)
    before = balance(redeemer, operator_address)

    receipt = redeemer.redeem(*tickets[0])  # 400 from the deposit, 600 from the reserve
    assert balance(redeemer, operator_address) - before == 1_000
    assert redeemer.events(receipt, "ReserveClaimed") == [
        {"reserveHolder": gateway_broker.account, "claimant": operator_address, "amount": 600}
    ]
    info = gateway_broker.sender_info()
    assert (info.deposit, info.reserve, info.reserve_claimed_in_current_round) == (0, 400, 600)

    redeemer.redeem(*tickets[1])  # only 400 left: the ticket pays what remains
    assert balance(redeemer, operator_address) - before == 1_400
    with pytest.raises(TransactionReverted, match="sender deposit and reserve are zero"):
        redeemer.redeem(*tickets[2])


def test_unlock_and_withdraw(anvil, broker, gateway_broker, redeemer, make_params, sign_tickets):
    with pytest.raises(TransactionReverted, match="no unlock request in progress"):
        gateway_broker.withdraw()
    receipt = gateway_broker.unlock()
    (event,) = gateway_broker.events(receipt, "Unlock")
    assert event["endRound"] == event["startRound"] + DEV_UNLOCK_PERIOD
    assert gateway_broker.sender_info().withdraw_round == event["endRound"]
    with pytest.raises(TransactionReverted, match="account is locked"):
        gateway_broker.withdraw()

    assert gateway_broker.events(gateway_broker.cancel_unlock(), "UnlockCancelled") == [{"sender": gateway_broker.account}]
    gateway_broker.unlock()
    mine(anvil.url, DEV_ROUND_LENGTH)
    ticket = sign_tickets(make_params())[0]  # a round later, so still valid when the unlock ends
    mine(anvil.url, (DEV_UNLOCK_PERIOD - 1) * DEV_ROUND_LENGTH)
    with pytest.raises(TransactionReverted, match="sender is unlocked"):
        redeemer.redeem(*ticket)

    before = balance(gateway_broker, gateway_broker.account)
    receipt = gateway_broker.withdraw()
    assert gateway_broker.events(receipt, "Withdrawal") == [{"sender": gateway_broker.account, "deposit": ETHER, "reserve": ETHER}]
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert balance(gateway_broker, gateway_broker.account) - before == 2 * ETHER - gas
    info = gateway_broker.sender_info()
    assert (info.deposit, info.reserve) == (0, 0)
    # As in Livepeer, the withdraw round stays until the next funding cancels it.
    assert gateway_broker.events(gateway_broker.fund_deposit(1), "UnlockCancelled") == [{"sender": gateway_broker.account}]
    assert gateway_broker.sender_info().withdraw_round == 0


def test_funding_cancels_an_unlock(gateway_broker):
    gateway_broker.unlock()
    receipt = gateway_broker.fund_deposit(1)
    assert gateway_broker.events(receipt, "UnlockCancelled") == [{"sender": gateway_broker.account}]
    assert gateway_broker.sender_info().withdraw_round == 0


def test_redeeming_during_the_unlock_period_still_pays(gateway_broker, redeemer, make_params, sign_tickets):
    gateway_broker.unlock()
    redeemer.redeem(*sign_tickets(make_params())[0])


def test_gas_price_cap(gateway_broker, redeemer, make_params, sign_tickets):
    ticket = sign_tickets(make_params())[0]
    with pytest.raises(GasPriceTooHigh):
        redeemer.redeem(*ticket, max_gas_price=1)
    assert not redeemer.is_used(ticket[0])
    redeemer.redeem(*ticket, max_gas_price=redeemer.gas_price() * 2)


def test_rounds_and_initialize_round(anvil, broker):
    round_, block_hash = broker.ticket_round()
    assert round_ in (broker.current_round(), broker.current_round() - 1)
    mine(anvil.url, 1)
    current = broker.current_round()
    assert broker.block_hash_for_round(current) != bytes(32)
    unpinned = current
    mine(anvil.url, DEV_ROUND_LENGTH)  # next round; pin it, then let both leave the 256-block window
    pinned = broker.current_round()
    mine(anvil.url, 1)
    expected = broker.block_hash_for_round(pinned)
    broker.initialize_round()
    mine(anvil.url, 300)
    assert broker.block_hash_for_round(pinned) == expected
    assert broker.block_hash_for_round(unpinned) == bytes(32)


def test_long_round_needs_initializing(anvil):
    broker = deploy_dev_contracts(anvil.url, round_length=1_000)
    start = broker.rounds.functions.currentRoundStartBlock().call()
    # 300 blocks into the next round: its first block and the last round's are both too old.
    mine(anvil.url, start + 1_000 + 300 - broker.block_number())
    with pytest.raises(BrokerError, match="initialize_round"):
        broker.ticket_round()
    with pytest.raises(TransactionReverted, match="round start block hash unavailable"):
        broker.initialize_round()


def test_read_only_client_cannot_send(anvil, broker):
    reader = TicketBroker(anvil.url, broker.address)
    assert reader.rounds_address == broker.rounds_address
    with pytest.raises(Exception, match="no private key"):
        reader.fund_deposit(1)
