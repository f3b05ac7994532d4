"""3-D shapes: file readers, part taxonomy and procedural shapes, part segmentation, a numpy renderer."""
