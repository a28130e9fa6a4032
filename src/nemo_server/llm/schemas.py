"""Request and response bodies: OpenAI's chat/completions shapes plus conversations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    """A text part of a message's content (the only part type a text model takes)."""

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of a chat."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = ""
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    """`response_format.json_schema`: the schema the output must match."""

    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class ResponseFormat(BaseModel):
    """`text`, `json_object` (any JSON object) or `json_schema` (enforced by a grammar)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    """`include_usage`: one last chunk carries the token counts."""

    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, description="Model id from GET /v1/models.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request.")

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops if s][:4]


class ChatCompletionRequest(_Sampling):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    conversation_id: str | None = Field(
        default=None,
        description="Nemo extension: prepend this conversation's history and append the exchange.",
    )


class CompletionRequest(_Sampling):
    """POST /v1/completions."""

    prompt: str | list[str]
    echo: bool = False
    response_format: ResponseFormat | None = None


class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "nemo"
    source: str
    loaded: bool
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadedModelInfo(BaseModel):
    """A model in memory (GET /v1/llm/status)."""

    id: str
    device: str
    file: str = ""  # the GGUF served: on the CPU, a bundled model's repacked copy
    n_ctx: int
    slots: int
    active: int
    queued: int
    in_use: int
    idle_s: float
    vram_mb: int
    lease_id: str | None = None


class LlmStatus(BaseModel):
    default_model: str
    keep_alive_s: float
    loaded: list[LoadedModelInfo]


class ConversationCreate(BaseModel):
    """POST /v1/conversations."""

    title: str = Field(default="", max_length=200)
    model: str | None = None
    system_prompt: str | None = Field(default=None, max_length=20000)


class ConversationMessage(BaseModel):
    role: str
    content: str
    created_at: datetime


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    title: str
    model: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


class ConversationDetail(Conversation):
    messages: list[ConversationMessage]


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Conversation]
