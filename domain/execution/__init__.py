"""Executing a visit (issue 4): notices, findings, review, publication, referrals, follow-up visits."""
