"""`WS /v1/audio/stream`: live transcription.

Protocol: connect (query `model`, `language`, `diarize`, `format`), receive
`{"type": "ready"}`; send binary frames of 16 kHz mono little-endian int16 PCM (any size), or
with `format=webm` / `format=ogg` the chunks a browser's MediaRecorder produces (opus in
webm/ogg, decoded incrementally in the limited subprocess); receive `partial` and
`final` events (`start`/`end` in seconds from the stream start, `speaker`, `words`, and
`delay_s`: speech end to final). Send `{"type": "end"}` to flush; the server answers
`{"type": "done", "transcript_id": ...}` (the stream is stored as a transcript) and closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Literal

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal
from nemo_server.common.errors import NemoError
from nemo_server.common.gpu import Priority
from nemo_server.transcription.audio import IncrementalDecoder
from nemo_server.transcription.service import Request as AsrRequest
from nemo_server.transcription.service import TranscriptionService
from nemo_server.transcription.streaming import LiveSession

router = service_router(tags=["transcription"])
log = logging.getLogger("nemo.transcription.live")
_MAX_FRAME = 1 << 20


@router.websocket("/v1/audio/stream")
async def audio_stream(
    websocket: WebSocket,
    model: str | None = None,
    language: str | None = None,
    diarize: bool = True,
    format: Literal["pcm16", "webm", "ogg"] = "pcm16",
) -> None:
    """Live transcription of a PCM stream with partial/final segments and online speakers."""
    service: TranscriptionService = websocket.app.state.transcription
    principal: Principal | None = getattr(websocket.state, "principal", None)
    await websocket.accept()
    if principal is None:
        await websocket.close(code=4401)
        return
    try:
        name = service.models.resolve(model)
        engine = await service.engine(name)
        options = service.options(engine, AsrRequest(name, language, word_timestamps=True))
        embedder = None
        if diarize:
            embedder = await asyncio.to_thread(websocket.app.state.embedders.get)
    except NemoError as exc:
        await websocket.send_json({"type": "error", "message": exc.message, "param": exc.param})
        await websocket.close(code=4000 + min(exc.status_code, 999))
        return
    session = LiveSession(engine, service.settings, options, embedder)
    container = None
    if format != "pcm16":
        container = IncrementalDecoder(
            service.decoder, service.settings.max_body_bytes, f".{format}"
        )
    await websocket.send_json({"type": "ready", "sample_rate": 16_000, "model": name})
    try:
        async with service.leases.lease(
            f"transcription:live:{principal.user_id}",
            priority=Priority.INTERACTIVE,
            vram_mb=service.settings.gpu_vram_mb,
            wait_timeout_s=60,
        ):
            await _pump(websocket, session, container)
    except WebSocketDisconnect:
        return
    except NemoError as exc:  # GPU busy, coordinator down, stream too large, bad container...
        await websocket.send_json({"type": "error", "message": exc.message, "param": exc.param})
        await websocket.close(code=4000 + min(exc.status_code, 999))
        return
    record = await asyncio.to_thread(
        service.store.save_transcript,
        principal.user_id,
        session.finals,
        source="stream",
        filename=None,
        model=name,
        language=options.language or "en",
        duration_s=session.duration,
        diarized=embedder is not None,
        complete=True,
    )
    delays = session.delays
    await websocket.send_json(
        {
            "type": "done",
            "transcript_id": record.id,
            "duration": round(session.duration, 3),
            "segments": len(session.finals),
            "mean_delay_s": round(sum(delays) / len(delays), 3) if delays else None,
        }
    )
    await websocket.close()


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def _pump(
    websocket: WebSocket, session: LiveSession, container: IncrementalDecoder | None
) -> None:
    last_decode = 0.0
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        if data is not None:
            if len(data) > _MAX_FRAME:
                await websocket.send_json({"type": "error", "message": "frame over 1 MiB"})
                continue
            if container is not None:
                # Decoding the container costs a subprocess: at most twice a second.
                due = time.monotonic() - last_decode >= 0.5
                samples = await asyncio.to_thread(container.push, data, decode=due)
                if due:
                    last_decode = time.monotonic()
                data = _pcm(samples)
            for event in await asyncio.to_thread(session.feed, data):
                await websocket.send_json(event)
            continue
        try:
            control = json.loads(message.get("text") or "")
        except ValueError:
            control = None
        if isinstance(control, dict) and control.get("type") == "end":
            if container is not None:
                tail = await asyncio.to_thread(container.finish)
                for event in await asyncio.to_thread(session.feed, _pcm(tail)):
                    await websocket.send_json(event)
            for event in await asyncio.to_thread(session.flush):
                await websocket.send_json(event)
            return
        await websocket.send_json(
            {"type": "error", "message": 'send binary PCM frames or {"type": "end"}'}
        )
