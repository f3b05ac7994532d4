"""What units respond to: deep dreams, optimized unit pictures and dataset unit profiles."""
