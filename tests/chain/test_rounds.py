"""Round initialization on a real anvil (chain/rounds.py): an operator's redeemer pins each
round's block hash, so tickets of a round stay redeemable after its first block has left
the EVM's 256-block window."""

from chain.broker import TicketBroker
from chain.rounds import RoundInitializer
from devstack.devchain import DEV_PRIVATE_KEYS, deploy_dev_contracts, mine


def into_next_round(anvil, broker, blocks_in: int = 1) -> int:
    """Mines to `blocks_in` blocks past the next round's first block; that round."""
    start = broker.current_round_start_block() + broker.round_length()
    mine(anvil.url, start + blocks_in - broker.block_number())
    return broker.current_round()


def test_each_round_is_pinned_once_and_stays_redeemable_past_the_window(anvil, broker, redeemer):
    initializer = RoundInitializer(redeemer)
    round_ = into_next_round(anvil, broker)
    expected = broker.block_hash_for_round(round_)
    assert expected != bytes(32) and not broker.current_round_initialized()

    assert initializer.initialize_due() == round_
    assert broker.current_round_initialized()
    block = broker.block_number()
    assert initializer.initialize_due() is None and broker.block_number() == block  # nothing sent

    mine(anvil.url, 300)  # the round's first block leaves the window; its hash is kept
    assert broker.block_hash_for_round(round_) == expected


def test_nothing_is_sent_on_a_rounds_first_block(anvil, broker, redeemer):
    initializer = RoundInitializer(redeemer)
    into_next_round(anvil, broker, blocks_in=0)  # the newest block is the round's first
    block = broker.block_number()
    assert initializer.initialize_due() is None and broker.block_number() == block
    mine(anvil.url, 1)
    assert initializer.initialize_due() == broker.current_round()


def test_a_round_too_late_to_pin_is_given_up_without_raising(anvil, redeemer):
    broker = deploy_dev_contracts(anvil.url, round_length=1_000)
    initializer = RoundInitializer(TicketBroker(anvil.url, broker.address, DEV_PRIVATE_KEYS[3]))  # gas: any key
    round_ = into_next_round(anvil, broker, blocks_in=300)  # its first block is 300 blocks old
    assert initializer.initialize_due() is None
    assert initializer.lost == round_ and not broker.current_round_initialized()
    block = broker.block_number()
    assert initializer.initialize_due() is None and broker.block_number() == block  # not tried again
