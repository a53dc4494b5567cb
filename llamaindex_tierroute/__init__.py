"""llamaindex_tierroute: placeholder until its issue lands."""
