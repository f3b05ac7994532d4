"""Names the command line shows before torch is imported (``deepvis --help`` stays instant), and
the memory one piece of work may take."""

DEFAULT_MODEL = "efficientnet_lite0"
# match's default, and the Correspondence tab's: the bundled self-supervised descriptor.
DESCRIPTOR_MODEL = "ssl_descriptor"
# What --task may declare a model's output to be (deepvis.core.imagemodel checks it).
TASKS = ("classification", "segmentation", "image", "descriptor")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# The main window's tabs in their order: the titles of the registered views (widgets/tabs),
# which `deepvis gui --tab` accepts. tests/gui/test_tab_titles.py keeps the two the same.
TAB_TITLES = ("Activations", "Segmentation", "Filters", "Dream", "Embedding", "Latent", "Attention", "Sample",
              "Signals", "Receptive field", "Correspondence", "Doctor", "Graph", "3-D")
# What one command's main work may hold at once (saliency's backward pass, a dream's full-size
# octave, segment's class maps at a picture's size): estimated before the work and refused past
# it, the same verdict on every machine.
WORK_MEMORY_BYTES = 4 * 2**30
