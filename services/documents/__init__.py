"""Printable documents (A4, Chinese) as HTML and PDF: the annual plan, the drawn list and dispatch sheet, the
inspection record, referral letters, the follow-up record and the visit's two notices; built from what the
use cases let the reader see (``builders``), rendered by ``domain.documents`` (HTML) and ``pdf`` (reportlab)."""
