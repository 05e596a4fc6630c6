"""Static files storage for production (settings/production.py)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed and compressed copies, gzip only. Every client accepts gzip; brotli at
    the quality WhiteNoise uses costs far more CPU than it saves bytes on the docs bundles, and
    would only run where some other package happened to install the brotli module, so a deploy
    would not produce the same files everywhere."""

    def create_compressor(self, **kwargs):
        return super().create_compressor(use_brotli=False, **kwargs)
