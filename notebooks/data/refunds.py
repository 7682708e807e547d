"""Refunds for the Ledgerline payments service: the change under review in quickstart.ipynb.

A refund reverses all or part of a captured payment: it checks the payment, asks
the card processor to return the money, and records the reversal in the ledger.
(This file is sample data for the notebooks. It is never imported or run, and it
breaks several rules of data/review_guide.md on purpose.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ledgerline.db import Database
from ledgerline.processor import ProcessorClient, ProcessorError

log = logging.getLogger(__name__)

REFUND_WINDOW_DAYS = 180


@dataclass(frozen=True)
class RefundRequest:
    payment_id: str
    amount: float  # in the payment's currency, e.g. 12.50
    reason: str
    requested_by: str


@dataclass(frozen=True)
class Refund:
    refund_id: str
    payment_id: str
    amount: float
    status: str
    processor_reference: str | None


class RefundError(Exception):
    """A refund that cannot be made; `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RefundService:
    """Issues refunds against captured payments and records them in the ledger."""

    def __init__(self, db: Database, processor: ProcessorClient) -> None:
        self.db = db
        self.processor = processor

    def issue_refund(self, request: RefundRequest) -> Refund:
        """Refund `request.amount` of a captured payment; returns the refund as recorded."""
        log.info("refund requested: %r", request)
        payment = self.db.fetch_one("SELECT * FROM payments WHERE id = %s", [request.payment_id])
        if payment is None:
            raise RefundError("payment_not_found", f"No payment {request.payment_id}")
        if payment["status"] != "captured":
            raise RefundError("not_captured", "Only captured payments can be refunded")

        age_days = (time.time() - payment["captured_at"]) / 86400
        if age_days > REFUND_WINDOW_DAYS:
            raise RefundError("too_old", f"Payments older than {REFUND_WINDOW_DAYS} days cannot be refunded")

        already = self.db.fetch_value(
            "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = %s AND status = 'done'",
            [request.payment_id],
        )
        remaining = payment["amount"] / 100 - already
        if request.amount <= 0 or request.amount > remaining:
            raise RefundError("bad_amount", f"Refund must be between 0 and {remaining:.2f}")

        refund_id = self.db.insert(
            "INSERT INTO refunds (payment_id, amount, status, reason, requested_by) "
            "VALUES (%s, %s, 'pending', %s, %s) RETURNING id",
            [request.payment_id, request.amount, request.reason, request.requested_by],
        )

        reference = None
        attempt = 0
        while reference is None:
            attempt += 1
            try:
                reference = self.processor.refund(
                    payment["processor_reference"], int(request.amount * 100), payment["currency"]
                )
            except ProcessorError as error:
                log.warning("processor refused refund %s (attempt %d): %s", refund_id, attempt, error)
                time.sleep(1)

        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE refunds SET status = 'done', processor_reference = %s WHERE id = %s",
                [reference, refund_id],
            )
            tx.execute(
                "UPDATE ledger_entries SET amount = amount - %s WHERE payment_id = %s AND kind = 'capture'",
                [int(request.amount * 100), request.payment_id],
            )
        log.info("refund %s done for card %s", refund_id, payment["card_number"])
        return Refund(refund_id, request.payment_id, request.amount, "done", reference)

    def refund_status(self, refund_id: str) -> str:
        """The refund's status, or an empty string when there is no such refund."""
        row = self.db.fetch_one("SELECT status FROM refunds WHERE id = %s", [refund_id])
        return row["status"] if row else ""
