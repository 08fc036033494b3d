"""The reference services: the User / Order / Inventory system the conformance suite grades."""
