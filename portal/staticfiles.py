"""Static files as production serves them: content-hashed names, compressed copies."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Also rewrite `import ... from "./x.js"` in the viewer's modules to the hashed names,
    so every module is cached for a year and an upgrade never mixes old and new modules."""

    support_js_module_import_aggregation = True
