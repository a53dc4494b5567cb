"""Backends: how a tier is called (LiteLLM Router, or a framework model object)."""
