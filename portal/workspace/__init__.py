"""The staff workspace: sign-in and sessions, passkeys, pages, forms, and uploads (tus, batches)."""
