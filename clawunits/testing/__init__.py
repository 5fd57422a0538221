"""Test tools that the offline demo also uses (a scripted Anthropic Messages API). Not used by the product."""
