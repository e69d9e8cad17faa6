/* The recipient closed the shared images: forget what the viewer kept in this tab
   (measurements, the traced canal), so the next person at a shared computer finds nothing. */
try { sessionStorage.clear(); } catch (e) { /* storage disabled: nothing was kept */ }
