"""Small networks shared by tests in different folders (tests/ is on sys.path through conftest.py)."""

import torch
from torch import nn


class Functional(nn.Module):
    """A model that applies its ReLU as a function, not a module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))
