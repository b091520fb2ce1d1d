"""Installing configs safely: SD-card import, signed remote apply on trial, signing."""
