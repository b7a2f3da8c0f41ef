"""Executing a visit: notices, findings, review, publication, referrals, follow-up visits."""
