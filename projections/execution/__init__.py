"""Read model of execution: inspections, public results, referrals, follow-up rounds and the names they show."""
