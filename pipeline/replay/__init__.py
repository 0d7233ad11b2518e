"""Replaying past streams: a time range re-processed beside the live pipeline, or the live group rewound."""
