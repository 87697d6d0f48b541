"""The 400 handler: whatever Django refused before a view ran (DisallowedHost, too many
fields, a BadRequest from the back office) is JSON {"detail"} on the API and a short Korean
text on pages, never Django's bare HTML page."""

from webtoon.middleware import bad_request_message, refusal


def bad_request(request, exception=None):
    return refusal(request, bad_request_message(), 400)
