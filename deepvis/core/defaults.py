"""Names the command line shows before torch is imported (``deepvis --help`` stays instant)."""

DEFAULT_MODEL = "efficientnet_lite0"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
