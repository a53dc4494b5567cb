"""Tool binding and structured output for chat models whose requests are OpenAI-shaped (ChatTierRoute)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_function, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from tierroute.errors import InvalidRequestError

from langchain_tierroute._convert import openai_tool_choice

__all__ = ["OpenAIToolsChatModel", "StructuredMethod", "build_structured_output", "json_schema_response_format"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
_METHODS = ("function_calling", "json_schema", "json_mode")


def _is_pydantic(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def json_schema_response_format(schema: Any, strict: bool | None) -> dict[str, Any]:
    """OpenAI ``response_format`` of type ``json_schema`` for a Pydantic class, TypedDict, JSON schema or tool."""
    if isinstance(schema, dict) and schema.get("type") == "json_schema" and "json_schema" in schema:
        return dict(schema)
    if isinstance(schema, dict) and "name" in schema and "schema" in schema:
        spec = dict(schema)
    else:
        fn = convert_to_openai_function(schema, strict=strict)
        spec = {"name": fn["name"], "schema": fn.get("parameters", {})}
        if fn.get("description"):
            spec["description"] = fn["description"]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def build_structured_output(
    llm: OpenAIToolsChatModel,
    schema: Any,
    *,
    method: StructuredMethod,
    include_raw: bool,
    strict: bool | None,
    kwargs: dict[str, Any],
) -> Runnable[Any, Any]:
    """The runnable behind :meth:`OpenAIToolsChatModel.with_structured_output`.

    Raises:
        InvalidRequestError: Unknown method, a missing schema, or ``strict`` with ``json_mode``.
    """
    if method not in _METHODS:
        raise InvalidRequestError(f"method={method!r} is not supported; use one of {list(_METHODS)}")
    if schema is None and method != "json_mode":
        raise InvalidRequestError(f"method={method!r} needs a schema (only json_mode works without one)")
    if strict is not None and method == "json_mode":
        raise InvalidRequestError("strict applies to function_calling and json_schema, not json_mode")
    pydantic = _is_pydantic(schema)
    ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable[Any, Any]
    if method == "function_calling":
        name = convert_to_openai_tool(schema)["function"]["name"]
        bound = llm.bind_tools(
            [schema], tool_choice=name, strict=strict, ls_structured_output_format=ls_format, **kwargs
        )
        if pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method == "json_schema":
        bound = llm.bind(
            response_format=json_schema_response_format(schema, strict),
            ls_structured_output_format=ls_format,
            **kwargs,
        )
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()
    else:
        bound = llm.bind(
            response_format={"type": "json_object"},
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
            **kwargs,
        )
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()
    if not include_raw:
        return bound | parser
    with_parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    without = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | with_parsed.with_fallbacks([without], exception_key="parsing_error")


class OpenAIToolsChatModel(BaseChatModel):
    """A chat model that sends tools, ``tool_choice`` and ``response_format`` in OpenAI form with each request.

    Subclasses read ``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``response_format`` from the call
    kwargs; :class:`~langchain_tierroute.ChatTierRoute` passes them to whichever tier serves.
    """

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, Pydantic classes, TypedDicts or OpenAI tool dicts).

        The tools travel in the request, so whichever tier serves (after any fallback) receives them; tiers
        that cannot call tools are skipped for these requests, and the ``tools: true`` rule condition sees them.

        Args:
            tools: The tools.
            tool_choice: ``"any"``/``"required"``/``True`` (must call a tool), ``"auto"``, ``"none"``, a tool
                name, or an OpenAI ``tool_choice`` dict.
            strict: OpenAI strict schema adherence for the tool definitions.
            parallel_tool_calls: Whether the model may call several tools at once.
            **kwargs: Other call parameters bound with the tools.

        Raises:
            InvalidRequestError: ``tool_choice`` names no bound tool.
        """
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [f["function"]["name"] for f in formatted]
        choice = openai_tool_choice(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable whose output follows ``schema``, served by whichever tier the router picks.

        Args:
            schema: A Pydantic class (output is an instance), a TypedDict, a JSON schema or an OpenAI tool
                (output is a dict). Optional only for ``json_mode``.
            method: ``function_calling`` (default: a forced tool call, the most portable across providers),
                ``json_schema`` (OpenAI ``response_format`` with the schema, which LiteLLM maps for other
                providers) or ``json_mode`` (``response_format={"type": "json_object"}``; say in the prompt what
                JSON to produce).
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``; the raw message
                keeps ``response_metadata["tierroute"]``.
            strict: Strict schema adherence (function_calling and json_schema).
            **kwargs: Other call parameters.

        Raises:
            InvalidRequestError: Unknown method, missing schema, or ``strict`` with ``json_mode``.
        """
        return build_structured_output(
            self, schema, method=method, include_raw=include_raw, strict=strict, kwargs=kwargs
        )
