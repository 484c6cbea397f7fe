"""PushT policies: the model-based scripted controller, its skill family, and the image state estimator."""
