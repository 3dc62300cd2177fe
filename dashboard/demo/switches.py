"""The demo's one switch: is the (imaginary) risk-scoring service fixed?

A newcomer sees fraud-check fail, fixes the cause here (a button on its
consumer page), replays the failed events and watches them turn Resolved.
The switch lives in Redis, so every worker process reads the same answer.
"""

from __future__ import annotations

from eventflow import keys
from eventflow.connection import get_redis

RISK_SERVICE = "demo.risk-service-fixed"
FRAUD_CHECK_HANDLER = "dashboard.demo.handlers.fraud_check"


def risk_service_fixed() -> bool:
    return bool(get_redis().exists(keys.switch(RISK_SERVICE)))


def set_risk_service_fixed(fixed: bool) -> None:
    if fixed:
        get_redis().set(keys.switch(RISK_SERVICE), 1)
    else:
        get_redis().delete(keys.switch(RISK_SERVICE))
