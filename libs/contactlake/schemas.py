"""Schemas of the silver business tables: the contract between jobs.unify (writer) and the
gold jobs (readers). Every column is nullable (Delta pitfall 7). Silver contacts and
customers are described in :mod:`contactlake.unify` (CONTACT_COLUMNS, scd2_customers).
Schemas are DDL strings, usable without a session: ``spark.createDataFrame(rows, SURVEYS)``.
"""

from __future__ import annotations

# One row per subscription period (subscription, then plan changes); end_date is the last
# day of the period, null while active; cancelled says the period ended by a cancellation.
SUBSCRIPTIONS = (
    "customer_key string, customer_id string, account_id string, plan string, "
    "monthly_fee double, start_date date, end_date date, cancelled boolean, "
    "record_id string, updated_at timestamp"
)

# One row per bill with its payment when one arrived (paid_at null while unpaid).
BILLS = (
    "customer_key string, customer_id string, account_id string, plan string, "
    "bill_month string, bill_date date, amount double, due_date date, paid_at timestamp, "
    "payment_method string, record_id string"
)

# One row per complaint ticket; close_ts null while open. open_date is the partition.
COMPLAINTS = (
    "ticket_id string, customer_key string, customer_id string, account_id string, "
    "contact_id string, source_channel string, category string, severity string, "
    "region string, city string, brand string, business string, open_ts timestamp, "
    "close_ts timestamp, open_date date"
)

# One row per answered survey; customer_key comes from the surveyed contact.
SURVEYS = (
    "survey_id string, contact_id string, customer_key string, channel string, nps int, "
    "csat int, answered_ts timestamp, answered_date date"
)

# One row per outbound campaign attempt; a control-group customer has one holdout row
# (attempt_no 0, attempt_ts null, connected false). responded: the customer took the offer.
CAMPAIGN_CONTACTS = (
    "attempt_id string, campaign_id string, offer string, channel string, "
    "customer_key string, customer_id string, group string, attempt_no int, "
    "attempt_ts timestamp, attempt_date date, connected boolean, result string, "
    "responded boolean"
)

SILVER_BUSINESS = {
    "silver/subscriptions": SUBSCRIPTIONS,
    "silver/bills": BILLS,
    "silver/complaints": COMPLAINTS,
    "silver/surveys": SURVEYS,
    "silver/campaign_contacts": CAMPAIGN_CONTACTS,
}
