"""Worker availability subscriptions: subscribe, renew (heartbeat), unsubscribe."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from codeq.core import models, render
from codeq.core.auth import Scope
from codeq.core.domain import Subscription
from codeq.server import schemas
from codeq.server.deps import Caller, Svc
from codeq.server.responses import JSON

router = APIRouter(prefix="/workers/subscriptions", tags=["workers"])
OWNER = schemas.Auth("worker", "a worker token whose sub made the subscription",
                     (Scope.SUBSCRIBE.value,))


class SubscriptionOut(schemas.Out):
    subscription_id: str
    expires_at: schemas.Timestamp


def _answer(subscription: Subscription, svc: Svc) -> Response:
    return JSON({"subscriptionId": subscription.id,
                 "expiresAt": render.timestamp(subscription.expires_at, svc.tz)})


@router.post("", **schemas.route(SubscriptionOut, auth=schemas.worker(Scope.SUBSCRIBE)))
async def subscribe(body: models.Subscribe, who: Caller, svc: Svc) -> Response:
    """Be told (POST to ``callbackUrl``) when a command's ready queue fills."""
    return _answer(await svc.subscriptions.subscribe(who, body), svc)


@router.post("/{subscription_id}/heartbeat",
             **schemas.route(SubscriptionOut, auth=OWNER, errors={404: schemas.UNKNOWN_ID}))
async def renew(subscription_id: str, who: Caller, svc: Svc,
                body: models.RenewSubscription | None = None) -> Response:
    """Keep a subscription alive for another ``ttlSeconds``."""
    renewed = await svc.subscriptions.renew(
        who, subscription_id, body or models.RenewSubscription.model_validate({}))
    return _answer(renewed, svc)


@router.delete("/{subscription_id}",
               **schemas.route(None, auth=OWNER, status=204, errors={404: schemas.UNKNOWN_ID}))
async def unsubscribe(subscription_id: str, who: Caller, svc: Svc) -> Response:
    """Stop notifications now."""
    await svc.subscriptions.unsubscribe(who, subscription_id)
    return Response(status_code=204)
