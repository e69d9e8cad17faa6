/* A page shown to someone without a session (signed out, link closed, expired or revoked, or
   not verified yet): forget what the viewer kept in this tab (measurements, the traced canal,
   their image names), so the next person at a shared computer finds nothing. */
try { sessionStorage.clear(); } catch (e) { /* storage disabled: nothing was kept */ }
