"""The watcher's reading of the chain, in-process against the stack's PostgreSQL, with the
chain played by a small fake of the broker's reads: it records only what is deep enough,
and when blocks it read are replaced (a reorg) it unwinds what it recorded past the fork
and reads the new blocks."""

from eth_account import Account
from sqlalchemy import select

from app import watcher
from app.store import ledger
from chain.broker import Redemption
from chain.recipient import new_ticket_params

SECRET = b"watcher test operator secret 32b"


class Chain:
    """Blocks by number, each with a hash and the redemptions in it."""

    def __init__(self, height: int):
        self.address = Account.create().address
        self.sender = Account.create().address
        self.blocks = [{"hash": self._hash(n, "a"), "redeemed": []} for n in range(height + 1)]

    @staticmethod
    def _hash(number: int, fork: str) -> bytes:
        return bytes.fromhex(f"{ord(fork):02x}{number:062x}")

    def mine(self, count=1, fork="a", redeemed=()) -> int:
        for _ in range(count):
            n = len(self.blocks)
            self.blocks.append({"hash": self._hash(n, fork), "redeemed": list(redeemed)})
            redeemed = ()
        return len(self.blocks) - 1

    def fork_at(self, number: int) -> None:
        """Blocks after `number` are gone; new ones come on another branch."""
        del self.blocks[number + 1:]

    def redeem(self, nonce: int) -> Redemption:
        params = new_ticket_params(SECRET, recipient=Account.create().address, sender=self.sender, face_value=1,
                                   win_prob=1, expiration_block=10**6, creation_round=1,
                                   creation_round_block_hash=b"\x01" * 32, seed=nonce)
        return Redemption(params.ticket(self.sender, nonce), 0, nonce.to_bytes(32, "big"), 0)

    # ---- the broker's reads the watcher makes ----

    def block_number(self) -> int:
        return len(self.blocks) - 1

    def block_hash(self, number: int) -> bytes | None:
        return self.blocks[number]["hash"] if number < len(self.blocks) else None

    def redemption_events(self, start, end, sender=None):
        return [Redemption(r.ticket, r.recipient_rand, r.tx_hash, n) for n in range(start, end + 1)
                for r in self.blocks[n]["redeemed"]]

    def event_logs(self, name, start, end, **filters):
        return []


def recorded(sessions, chain) -> dict:
    with sessions() as session:
        return {r.sender_nonce: r.block_number for r in session.scalars(
            select(ledger.RedemptionRecord).where(ledger.RedemptionRecord.sender == chain.sender))}


def test_reads_at_depth_and_unwinds_a_reorg(sessions):
    chain = Chain(height=10)
    first = chain.mine(redeemed=[chain.redeem(1)])
    chain.mine(2)
    options = dict(confirmations=3, from_block=0)
    watcher.reconcile(sessions, chain, chain.sender, **options)
    assert recorded(sessions, chain) == {}  # two blocks deep: not yet
    chain.mine(1)
    watcher.reconcile(sessions, chain, chain.sender, **options)
    assert recorded(sessions, chain) == {1: first}

    chain.fork_at(first - 1)  # the block of the redemption is replaced
    replaced = chain.mine(fork="b", redeemed=[chain.redeem(2)])
    chain.mine(3, fork="b")
    counts = watcher.reconcile(sessions, chain, chain.sender, **options)
    assert counts["unwound"] == 1
    assert recorded(sessions, chain) == {2: replaced}
    with sessions() as session:
        assert ledger.cursor(session, ledger.watcher_cursor(chain.address, chain.sender)) == chain.block_number() - 3
