"""Believable demo data: shops, channels, recipients, messages, Meta API errors, Node.js stack traces."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Shop:
    name: str
    country_code: str
    language: str
    platforms: tuple[str, ...]
    handle: str
    phone: str


SHOPS: tuple[Shop, ...] = (
    Shop("Café Aurora", "34", "es", ("whatsapp", "instagram"), "cafe.aurora", "+34 910 555 014"),
    Shop("Bäckerei Sonnenschein", "49", "de", ("whatsapp", "facebook"), "baeckerei.sonnenschein",
         "+49 30 5557 2210"),
    Shop("Green Leaf Grocers", "44", "en_GB", ("whatsapp", "instagram", "facebook"), "greenleafgrocers",
         "+44 20 7946 0321"),
    Shop("Taquería El Sol", "52", "es_MX", ("whatsapp", "instagram"), "taqueria.elsol", "+52 55 5550 1988"),
    Shop("Copper Kettle Coffee", "1", "en_US", ("whatsapp", "instagram"), "copperkettle.coffee",
         "+1 503 555 0142"),
    Shop("Nordic Bike Shop", "46", "sv", ("whatsapp", "facebook"), "nordicbikeshop", "+46 8 555 123 40"),
    Shop("Luna Florist", "39", "it", ("whatsapp", "instagram"), "luna.florist", "+39 06 5556 7781"),
    Shop("Harbour Books", "61", "en_AU", ("whatsapp", "facebook"), "harbourbooks", "+61 2 5550 4417"),
)  # fmt: skip

CUSTOMERS = (
    "Marta",
    "Jonas",
    "Aisha",
    "Lucas",
    "Sofía",
    "Emma",
    "Kenji",
    "Olivia",
    "Mateo",
    "Freya",
    "Noah",
    "Chiara",
    "Liam",
    "Zoë",
    "Björn",
    "Priya",
)

TEMPLATES: dict[str, str] = {
    "order_ready": "Hi {name}, your order #{order} is ready for pickup at {shop}.",
    "receipt_link": "Thanks for shopping at {shop}, {name}! Your receipt: https://pos.example/r/{order}",
    "loyalty_points_update": "{name}, you earned {points} points at {shop}. Balance: {balance}.",
    "appointment_reminder": "Reminder: your appointment at {shop} is tomorrow at {hour}:00.",
    "back_in_stock": "Good news {name}: the item you asked about is back in stock at {shop}.",
}

_DIRECT = (
    "Hi {name}! Yes, we are open until 19:00 today.",
    "Thanks {name}, we have set aside your order #{order}.",
    "Hello {name}, your table for 2 at {shop} is confirmed.",
)

# (error message, weight) per platform, as the Meta Graph / WhatsApp Cloud APIs word them.
_TOKEN_EXPIRED = (
    "(#190) Error validating access token: Session has expired on {expired}. The current time is {now}."
)
PLATFORM_ERRORS: dict[str, tuple[tuple[str, int], ...]] = {
    "whatsapp": (
        ("(#131048) Spam rate limit hit", 5),
        ("(#131026) Message undeliverable: invalid recipient", 4),
        ("(#132001) Template name does not exist in the translation", 3),
        ("(#132015) Template is paused due to low quality: template not approved for sending", 2),
        (
            "(#131047) Re-engagement message: more than 24 hours have passed since the customer last replied",
            2,
        ),
        ("(#130429) Rate limit hit: Cloud API message throughput has been reached", 2),
        (_TOKEN_EXPIRED, 2),
        ("Max retries exceeded", 1),
    ),
    "instagram": (
        ("(#4) Application request limit reached", 5),
        ("(#10) This message is sent outside of allowed window.", 3),
        ("(#100) No matching user found", 3),
        (_TOKEN_EXPIRED, 2),
        ("(#613) Calls to this api have exceeded the rate limit.", 2),
        ("Max retries exceeded", 1),
    ),
    "facebook": (
        ("(#551) This person isn't available right now.", 3),
        ("(#10) This message is sent outside of allowed window.", 3),
        ("(#4) Application request limit reached", 3),
        (_TOKEN_EXPIRED, 2),
        ("Max retries exceeded", 1),
    ),
}


def api_error(rng: random.Random, platform: str, now: datetime | None = None) -> str:
    choices = PLATFORM_ERRORS.get(platform, PLATFORM_ERRORS["whatsapp"])
    text = rng.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]
    if "{expired}" in text:
        current = (now or datetime.now(UTC)).astimezone(UTC)
        expired = current - timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 12))
        fmt = "%A, %d-%b-%y %H:%M:%S UTC"
        text = text.format(expired=expired.strftime(fmt), now=current.strftime(fmt))
    return text


def channel_name(shop: Shop, platform: str) -> str:
    if platform == "whatsapp":
        return f"WhatsApp Business {shop.phone}"
    if platform == "instagram":
        return f"Instagram @{shop.handle}"
    return f"Facebook page {shop.name}"


def recipient(rng: random.Random, platform: str, country_code: str) -> str:
    if platform == "whatsapp":
        return country_code + "".join(str(rng.randint(0, 9)) for _ in range(12 - len(country_code)))
    if platform == "instagram":
        return "1784" + "".join(str(rng.randint(0, 9)) for _ in range(13))
    return "".join(str(rng.randint(1, 9)) for _ in range(16))


def message(
    rng: random.Random, shop_name: str, platform: str, language: str, country_code: str
) -> dict[str, Any]:
    """The payload the backend stores for one outbound message."""
    fields = {
        "name": rng.choice(CUSTOMERS),
        "shop": shop_name,
        "order": rng.randint(1000, 9999),
        "points": rng.randint(5, 60),
        "balance": rng.randint(60, 900),
        "hour": rng.randint(9, 18),
    }
    to = recipient(rng, platform, country_code)
    if platform == "whatsapp":
        template = rng.choice(list(TEMPLATES))
        return {
            "to": to,
            "type": "template",
            "template": template,
            "language": language,
            "body": TEMPLATES[template].format(**fields),
        }
    return {
        "to": to,
        "type": "text",
        "template": None,
        "language": language,
        "body": rng.choice(_DIRECT).format(**fields),
    }


def message_data(
    message_id: int,
    business_id: int,
    channel_id: int,
    platform: str,
    payload: dict[str, Any],
    attempts: int = 3,
) -> dict[str, Any]:
    """Like the seed's ``moveToDeadLetterQueue(messageData, ...)``: what is needed to send it again."""
    return {
        "messageId": message_id,
        "businessId": business_id,
        "channelId": channel_id,
        "platform": platform,
        "to": payload.get("to"),
        "type": payload.get("type"),
        "template": payload.get("template"),
        "language": payload.get("language"),
        "body": payload.get("body"),
        "attempts": attempts,
        "maxRetries": 3,
    }


# --------------------------------------------------------------------------- event failures

_SRC = "/srv/pos/backend/src"
_NM = "/srv/pos/backend/node_modules"
_EMIT = (
    "    at EventEmitter.emit (node:events:519:28)",
    f"    at SystemEvents.emitEvent ({_SRC}/events/systemEvents.js:24:10)",
    f"    at emitSystemEvent ({_SRC}/services/eventService.js:7:18)",
)
_TICKS = "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"


@dataclass(frozen=True)
class EventError:
    message: str
    frames: tuple[str, ...]

    def stack(self) -> str:
        return "\n".join((self.message, *self.frames))


EVENT_ERRORS: dict[str, tuple[EventError, ...]] = {
    "sale.created": (
        EventError("TypeError: Cannot read properties of undefined (reading 'quantity')", (
            f"    at updateStockForSale ({_SRC}/services/inventoryService.js:142:37)",
            "    at Array.forEach (<anonymous>)",
            f"    at EventEmitter.<anonymous> ({_SRC}/listeners/saleListeners.js:27:11)",
            *_EMIT,
            f"    at createSale ({_SRC}/controllers/salesController.js:211:5)",
            _TICKS,
        )),
        EventError('error: duplicate key value violates unique constraint "sales_receipt_number_key"', (
            f"    at {_NM}/pg/lib/client.js:535:17",
            _TICKS,
            f"    at async assignReceiptNumber ({_SRC}/services/receiptService.js:58:20)",
            f"    at async EventEmitter.<anonymous> ({_SRC}/listeners/saleListeners.js:41:5)",
        )),
    ),
    "inventory.low_stock": (
        EventError("FetchError: request to https://graph.facebook.com/v19.0/109438765/messages failed, "
                   "reason: socket hang up", (
            f"    at ClientRequest.<anonymous> ({_NM}/node-fetch/lib/index.js:1505:11)",
            "    at ClientRequest.emit (node:events:519:28)",
            "    at TLSSocket.socketOnEnd (node:_http_client:524:9)",
            _TICKS,
            f"    at async sendLowStockAlert ({_SRC}/services/whatsappService.js:96:22)",
        )),
        EventError("Error: (#131048) Spam rate limit hit", (
            f"    at sendTemplate ({_SRC}/services/whatsappService.js:71:13)",
            _TICKS,
            f"    at async sendLowStockAlert ({_SRC}/services/whatsappService.js:96:22)",
            f"    at async EventEmitter.<anonymous> ({_SRC}/listeners/inventoryListeners.js:18:7)",
        )),
    ),
    "worker.step.completed": (
        EventError("Error: connect ECONNREFUSED 127.0.0.1:6379", (
            "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)",
            f"    at RedisQueue.enqueue ({_SRC}/worker/queue.js:44:19)",
            f"    at EventEmitter.<anonymous> ({_SRC}/listeners/workerListeners.js:33:18)",
            *_EMIT,
        )),
        EventError("TimeoutError: Step 'print_receipt' timed out after 30000ms", (
            f"    at Timeout._onTimeout ({_SRC}/worker/stepRunner.js:88:16)",
            "    at listOnTimeout (node:internal/timers:573:17)",
            "    at process.processTimers (node:internal/timers:514:7)",
        )),
    ),
    "payment.captured": (
        EventError("StripeConnectionError: An error occurred with our connection to Stripe. "
                   "Request was retried 2 times.", (
            f"    at {_NM}/stripe/cjs/RequestSender.js:296:41",
            _TICKS,
            f"    at async capturePayment ({_SRC}/services/paymentService.js:120:21)",
            f"    at async EventEmitter.<anonymous> ({_SRC}/listeners/paymentListeners.js:22:9)",
        )),
    ),
    "receipt.email": (
        EventError("Error: Connection timeout", (
            f"    at SMTPConnection._formatError ({_NM}/nodemailer/lib/smtp-connection/"
            "index.js:798:19)",
            f"    at SMTPConnection._onError ({_NM}/nodemailer/lib/smtp-connection/"
            "index.js:784:20)",
            f"    at Timeout.<anonymous> ({_NM}/nodemailer/lib/smtp-connection/"
            "index.js:229:22)",
            "    at listOnTimeout (node:internal/timers:573:17)",
        )),
        EventError("Error: Invalid greeting. response=421 4.7.0 Try again later, closing connection.", (
            f"    at SMTPConnection._actionGreeting ({_NM}/nodemailer/lib/"
            "smtp-connection/index.js:1205:27)",
            f"    at SMTPConnection._processResponse ({_NM}/nodemailer/lib/"
            "smtp-connection/index.js:969:20)",
            _TICKS,
        )),
    ),
}  # fmt: skip

EVENT_WEIGHTS: dict[str, int] = {
    "sale.created": 4,
    "inventory.low_stock": 3,
    "worker.step.completed": 2,
    "payment.captured": 2,
    "receipt.email": 3,
}


def event_name(rng: random.Random) -> str:
    return rng.choices(list(EVENT_WEIGHTS), weights=list(EVENT_WEIGHTS.values()))[0]


def event_error(rng: random.Random, name: str) -> EventError:
    return rng.choice(EVENT_ERRORS.get(name, EVENT_ERRORS["sale.created"]))


def event_data(rng: random.Random, name: str, business_id: int) -> dict[str, Any]:
    """The sanitised data the backend stores with a failed event (no passwords, tokens, keys)."""
    base: dict[str, Any] = {"businessId": business_id}
    if name == "sale.created":
        items = [
            {"productId": rng.randint(100, 140), "quantity": rng.randint(1, 4)}
            for _ in range(rng.randint(1, 3))
        ]
        return {
            **base,
            "saleId": rng.randint(5000, 99999),
            "items": items,
            "total": round(rng.uniform(3, 90), 2),
            "currency": "EUR",
        }
    if name == "inventory.low_stock":
        return {**base, "productId": rng.randint(100, 140), "stock": rng.randint(0, 4), "threshold": 5}
    if name == "worker.step.completed":
        return {
            **base,
            "workerId": rng.randint(1, 12),
            "step": rng.choice(["reserve_stock", "capture_payment", "print_receipt", "send_receipt"]),
            "jobId": rng.randint(10**5, 10**6),
        }
    if name == "payment.captured":
        return {
            **base,
            "saleId": rng.randint(5000, 99999),
            "amount": rng.randint(300, 9000),
            "provider": "stripe",
            "paymentIntent": "pi_demo"
            + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10)),
        }
    return {**base, "saleId": rng.randint(5000, 99999), "template": "receipt", "locale": "en"}
