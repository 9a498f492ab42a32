"""`dcgan-faces`: a command-line client of the service's HTTP API (httpx + tqdm, nothing else)."""
