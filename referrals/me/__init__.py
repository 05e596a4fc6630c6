"""The person's page (/me): claim code and PIN, the status in their language, who opened their
details, stop contact, withdraw. Django templates, no JavaScript needed, the same services as
the self-service API (referrals.services.self_*, referrals.selectors.self_*)."""
