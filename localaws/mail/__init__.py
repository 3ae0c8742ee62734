"""Mail catcher: an SMTP server that stores every message and serves MailHog's HTTP API."""
