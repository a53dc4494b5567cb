"""langchain_tierroute: tierroute as a LangChain chat model, plus a router between arbitrary runnables.

``ChatTierRoute`` is a drop-in ``BaseChatModel``: each request goes to the cheapest tier that clears the quality
bar, executes through tierroute's fault-tolerant cascade, and comes back with the served model, the routing
decision and the cost in ``response_metadata``. ``RouterRunnable`` applies the same decision layers to choose
between whole chains.
"""

from __future__ import annotations

from langchain_tierroute.backend import LangChainBackend
from langchain_tierroute.chat_models import ChatTierRoute
from langchain_tierroute.runnable import RouterRunnable

__all__ = ["ChatTierRoute", "LangChainBackend", "RouterRunnable"]
