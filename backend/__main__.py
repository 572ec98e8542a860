import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line module itself loads
    print("error [cancelled]: interrupted during start-up; nothing was changed.", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
