"""Decision layers: rules, semantic, classifier, and the chain that runs them."""
