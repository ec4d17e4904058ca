"""Dialogs of the workbench's menus. Each is opened non-modally (``open()``) by a controller and
kept as an attribute of it, so tests can fill and click them like a user."""
