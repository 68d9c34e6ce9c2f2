"""
title: OpsHub usage reporter
author: OpsHub
version: 1.0.0
required_open_webui_version: 0.5.0
license: MIT
description: Sends one event per chat request (user, model, chat id, token counts, latency) to an OpsHub agent's session webhook (inputs.session_webhook).
"""

# Open WebUI filter function. Install: Admin Panel → Functions → "+" (new function),
# paste this file, save, switch it on, and make it global (⋮ → globe icon) so it runs
# for every model. Then set the valves (gear icon): opshub_url, auth_token and, if the
# agent checks signatures, signature_secret.
#
# inlet() notes when a request starts; outlet() (called by the web UI when the answer
# is complete) posts {username, model, action: "request", chat_id, prompt_tokens,
# completion_tokens, latency_ms, ...} to the agent. Posting happens in the background
# with a short timeout: a slow or absent agent never delays or breaks a chat.

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.request
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

# Requests whose outlet never comes (API calls, closed tabs) are forgotten after this.
_STARTED_TTL_SECONDS = 3600
_STARTED_MAX = 10000


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value >= 0:
        return int(value)
    return None


class Filter:
    class Valves(BaseModel):
        priority: int = Field(
            default=100,
            description="Filter order (lower runs first). High, so that the model and usage other filters set are seen.",
        )
        opshub_url: str = Field(
            default="http://opshub:8089/users/session",
            description="The agent's session webhook: http://<agent host>:8089/users/session",
        )
        auth_token: str = Field(
            default="",
            description="The agent's token (agent.http.auth_token, or the webhook's own auth_token); sent as Authorization: Bearer.",
        )
        signature_secret: str = Field(
            default="",
            description="When the agent has signature_secret set: the same secret. Bodies are then signed with HMAC-SHA256.",
        )
        signature_header: str = Field(
            default="X-OpsHub-Signature",
            description="Header for the signature (sha256=<hex>); must match the agent's signature_header.",
        )
        username_field: str = Field(
            default="name",
            description="Which Open WebUI user field becomes the OpsHub username.",
            json_schema_extra={"enum": ["name", "email", "id"]},
        )
        send_prompt_events: bool = Field(
            default=False,
            description="Also send an event (action: prompt) when a request starts. Useful for direct API use, where Open WebUI does not call outlet.",
        )
        timeout_seconds: float = Field(default=5.0, description="How long one post to the agent may take.")
        enabled: bool = Field(default=True, description="Switch reporting off without removing the filter.")

    def __init__(self):
        self.valves = self.Valves()
        self._started: dict[str, float] = {}
        self._pending: set = set()
        self._last_failure_logged = 0.0

    # ------------------------------------------------------------------ Open WebUI hooks

    async def inlet(
        self,
        body: dict,
        __user__: Optional[dict] = None,
        __metadata__: Optional[dict] = None,
        __request__: Any = None,
    ) -> dict:
        try:
            if self.valves.enabled:
                self._forget_old()
                self._started[self._key(body, __metadata__)] = time.monotonic()
                if self.valves.send_prompt_events:
                    self._send(self._event("prompt", body, __user__, __metadata__, __request__))
        except Exception as e:  # never break a chat
            log.warning(f"opshub filter inlet: {e}")
        return body

    async def outlet(
        self,
        body: dict,
        __user__: Optional[dict] = None,
        __metadata__: Optional[dict] = None,
        __request__: Any = None,
    ) -> dict:
        try:
            if self.valves.enabled:
                event = self._event("request", body, __user__, __metadata__, __request__)
                started = self._started.pop(self._key(body, __metadata__), None)
                if started is not None:
                    event["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
                usage, extra = self._usage(body)
                event.update(usage)
                if extra:
                    event.setdefault("metadata", {}).update(extra)
                self._send(event)
        except Exception as e:
            log.warning(f"opshub filter outlet: {e}")
        return body

    async def flush(self) -> None:
        """Waits for posts in flight (for tests and shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ------------------------------------------------------------------ building the event

    @staticmethod
    def _meta(body: dict, metadata: Optional[dict]) -> dict:
        meta = dict(body.get("metadata") or {}) if isinstance(body.get("metadata"), dict) else {}
        meta.update(metadata or {})
        return meta

    def _key(self, body: dict, metadata: Optional[dict]) -> str:
        meta = self._meta(body, metadata)
        chat = meta.get("chat_id") or body.get("chat_id") or ""
        message = meta.get("message_id") or body.get("id") or ""
        return f"{chat}:{message}"

    def _forget_old(self) -> None:
        now = time.monotonic()
        if len(self._started) >= _STARTED_MAX:
            self._started.clear()
        for key in [k for k, t in self._started.items() if now - t > _STARTED_TTL_SECONDS]:
            self._started.pop(key, None)

    def _event(self, action: str, body: dict, user: Optional[dict], metadata: Optional[dict], request: Any) -> dict:
        user = user or {}
        meta = self._meta(body, metadata)
        preferred = user.get(self.valves.username_field)
        username = preferred or user.get("name") or user.get("email") or user.get("id") or "anonymous"
        event: dict = {
            "username": str(username)[:256],
            "action": action,
            "client": "openwebui_filter",
            "status": "success",
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }
        optional = {
            "model": body.get("model"),
            "user_id": user.get("id"),
            "email": user.get("email"),
            "role": user.get("role"),
            "chat_id": meta.get("chat_id") or body.get("chat_id"),
            "message_id": meta.get("message_id") or body.get("id"),
            "session_id": meta.get("session_id") or body.get("session_id"),
        }
        limits = {"email": 320, "role": 64}
        for key, value in optional.items():
            if isinstance(value, (str, int)) and str(value):
                event[key] = str(value)[: limits.get(key, 256)]
        interface = meta.get("interface")
        if interface:
            event["metadata"] = {"interface": str(interface)}
        if request is not None:
            try:
                headers = request.headers
                forwarded = headers.get("x-forwarded-for")
                ip = forwarded.split(",")[0].strip() if forwarded else (request.client.host if request.client else None)
                if ip:
                    event["ip_address"] = ip[:64]
                agent = headers.get("user-agent")
                if agent:
                    event["user_agent"] = agent[:1024]
            except Exception:
                pass
        return event

    @staticmethod
    def _usage(body: dict) -> tuple[dict, dict]:
        """Token counts of the last assistant message: OpenAI-style usage or Ollama's counters."""
        messages = body.get("messages") or []
        last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
        if not last:
            return {}, {}
        stats: dict = {}
        for key in ("info", "usage"):  # older Open WebUI keeps Ollama's stats under "info"
            if isinstance(last.get(key), dict):
                stats.update(last[key])
        usage: dict = {}
        prompt = _int(stats.get("prompt_tokens", stats.get("input_tokens", stats.get("prompt_eval_count"))))
        completion = _int(stats.get("completion_tokens", stats.get("output_tokens", stats.get("eval_count"))))
        total = _int(stats.get("total_tokens"))
        if prompt is not None:
            usage["prompt_tokens"] = prompt
        if completion is not None:
            usage["completion_tokens"] = completion
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        if total is not None:
            usage["total_tokens"] = total
        extra: dict = {}
        duration = _int(stats.get("total_duration"))  # Ollama: nanoseconds
        if duration is not None:
            extra["model_duration_ms"] = round(duration / 1e6, 1)
        rate = stats.get("response_token/s")
        if isinstance(rate, (int, float)) and not isinstance(rate, bool):
            extra["tokens_per_second"] = rate
        return usage, extra

    # ------------------------------------------------------------------ posting

    def _send(self, event: dict) -> None:
        data = json.dumps(event, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "opshub-openwebui-filter/1.0"}
        if self.valves.auth_token:
            headers["Authorization"] = f"Bearer {self.valves.auth_token}"
        if self.valves.signature_secret:
            digest = hmac.new(self.valves.signature_secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
            headers[self.valves.signature_header] = f"sha256={digest}"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            threading.Thread(target=self._post, args=(data, headers), daemon=True).start()
            return
        task = loop.create_task(asyncio.to_thread(self._post, data, headers))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _post(self, data: bytes, headers: dict) -> None:
        request = urllib.request.Request(self.valves.opshub_url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.valves.timeout_seconds) as response:
                response.read()
        except Exception as e:
            now = time.monotonic()
            if now - self._last_failure_logged > 60:  # at most one line a minute
                self._last_failure_logged = now
                log.warning(f"opshub filter: cannot post to {self.valves.opshub_url}: {e}")
