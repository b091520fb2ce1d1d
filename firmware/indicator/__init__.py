"""The desk light, the vibration motor and the snooze button (gpiozero lives only here)."""
