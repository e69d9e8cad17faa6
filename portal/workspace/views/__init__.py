"""Staff workspace views, split by noun; see the modules of this package."""
