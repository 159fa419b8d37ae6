"""Probabilistic micropayments, byte-compatible with go-livepeer's pm package, and a client for
the TicketBroker they are redeemed on. Importing this package starts nothing and reads nothing."""

from .broker import (
    Broker,
    BrokerError,
    ChainEndpoint,
    GasPriceTooHigh,
    BatchResult,
    Redemption,
    SenderInfo,
    TicketBroker,
    TransactionReverted,
)
from .payment import Payment, SignedTicket
from .pricing import (
    MAX_WIN_PROB,
    face_value_for,
    ticket_economics,
    ticket_ev,
    tickets_for_fee,
    win_prob_for,
)
from .recipient import (
    DEFAULT_TICKET_EV,
    Recipient,
    TicketParams,
    new_ticket_params,
    recipient_rand,
    recipient_rand_hash,
)
from .sender import MemoryNonceSource, NonceSource, TicketSender, TooManyTickets
from .signature import InvalidSignature, address_of, recover_signer, sign_ticket, verify_signature
from .ticket import Ticket, aux_data, ticket_hash
from .validator import MemorySeenNonces, Rejection, SeenNonces, TicketValidator, Verdict
from .winning import is_winning

__all__ = [
    "BatchResult",
    "DEFAULT_TICKET_EV",
    "Broker",
    "BrokerError",
    "ChainEndpoint",
    "GasPriceTooHigh",
    "InvalidSignature",
    "MAX_WIN_PROB",
    "MemoryNonceSource",
    "MemorySeenNonces",
    "NonceSource",
    "Payment",
    "Recipient",
    "Redemption",
    "Rejection",
    "SeenNonces",
    "SenderInfo",
    "SignedTicket",
    "Ticket",
    "TicketBroker",
    "TicketParams",
    "TicketSender",
    "TicketValidator",
    "TooManyTickets",
    "TransactionReverted",
    "Verdict",
    "address_of",
    "aux_data",
    "face_value_for",
    "is_winning",
    "new_ticket_params",
    "recipient_rand",
    "recipient_rand_hash",
    "recover_signer",
    "sign_ticket",
    "ticket_economics",
    "ticket_ev",
    "ticket_hash",
    "tickets_for_fee",
    "verify_signature",
    "win_prob_for",
]
