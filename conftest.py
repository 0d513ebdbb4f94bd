pytest_plugins = ["ecips.testing"]
