"""The app around the tabs: startup, main window, session, recording, help, theme, Qt setup, view registry."""
