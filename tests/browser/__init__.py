"""Real-browser tests: Firefox ESR at Tor Browser's security levels, and Chromium."""
