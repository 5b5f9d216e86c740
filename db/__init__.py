"""Persistence, one module per concept; every store takes the one ``Database``
(``database.Database.from_url``), and writes that belong together compose, as functions
taking a session, inside one transaction.

``jobs`` jobs and their changes; ``logs`` their log lines; ``idempotency`` idempotency
keys; ``experiments`` experiments, parameters and metrics; ``registry`` models and
aliases; ``schedules`` cron schedules; ``keys`` API keys; ``mirror`` the MLflow ledger;
``retention`` purging. Beneath them: ``database``, ``engine``, ``settings``, ``models``
(tables), ``records`` (what goes in and out), ``paging`` and ``migrate``.
"""
