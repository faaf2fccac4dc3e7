"""Key material: the key directory layout, loaders and provisioning."""
