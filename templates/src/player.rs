//! The video/audio player (item page and `/embed/{id}`), caption management and the embed code.
//! The markup works as a plain `<video controls>` of the progressive download without script;
//! `static/player.js` replaces the controls with its own (HLS, quality, captions, speed, keys).

use maud::{DOCTYPE, Markup, html};

#[derive(Debug, Clone)]
pub struct CaptionTrackView {
    pub lang: String,
    pub label: String,
    /// The WebVTT URL (with the signed token when there is one).
    pub src: String,
}

#[derive(Debug, Clone, Default)]
pub struct PlayerView {
    pub id: i64,
    pub title: String,
    pub audio_only: bool,
    /// `hls/master.m3u8` when the item is playable (with `?t=` when a token was issued).
    pub master: Option<String>,
    /// The progressive download, when published: the fallback without MSE.
    pub download: Option<String>,
    pub poster: Option<String>,
    /// `sprite.vtt` for seek-bar previews.
    pub sprite: Option<String>,
    /// Signed URL token for media fetches, empty when none was issued.
    pub token: String,
    pub captions: Vec<CaptionTrackView>,
    /// Where this person stopped last time, in seconds.
    pub resume_at: f64,
    /// Poll `GET /api/v1/media/{id}` for progress until playable.
    pub poll: bool,
    /// Show a Retry button when the transcode failed (owner, editor, admin).
    pub can_retry: bool,
    /// Save the position server-side (a signed-in session).
    pub save_position: bool,
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// The player: the media element, the status line (progress, errors) and the controls.
pub fn player(v: &PlayerView) -> Markup {
    let playable = v.master.is_some() || v.download.is_some();
    html! {
        div.player #player
            data-media-id=(v.id)
            data-master=(opt(&v.master))
            data-download=(opt(&v.download))
            data-sprite=(opt(&v.sprite))
            data-token=(v.token)
            data-resume=(format!("{:.1}", v.resume_at))
            data-poll=(if v.poll { "true" } else { "false" })
            data-save-position=(if v.save_position { "true" } else { "false" })
            data-audio=(if v.audio_only { "true" } else { "false" })
        {
            div.player-stage {
                @if v.audio_only {
                    audio.player-media controls preload="none" aria-label=(format!("{} (recording)", v.title)) {
                        @if let Some(src) = &v.download { source src=(src) type="audio/mp4"; }
                        @for t in &v.captions {
                            track kind="captions" src=(t.src) srclang=(t.lang) label=(t.label);
                        }
                    }
                } @else {
                    video.player-media controls preload="none" playsinline
                        poster=[v.poster.as_deref()] aria-label=(format!("{} (video)", v.title)) {
                        @if let Some(src) = &v.download { source src=(src) type="video/mp4"; }
                        @for t in &v.captions {
                            track kind="captions" src=(t.src) srclang=(t.lang) label=(t.label);
                        }
                        "Your browser cannot play this video here. Use the download link below."
                    }
                }
                div.player-preview hidden aria-hidden="true" {
                    div.player-preview-image {}
                    span.player-preview-time {}
                }
            }
            p.player-status role="status" aria-live="polite" hidden[playable && !v.poll] {
                @if !playable { "This video is being prepared. It will play here as soon as it is ready." }
            }
            div.player-error role="alert" hidden {
                p.player-error-text {}
                @if v.can_retry {
                    button.player-retry type="button" { "Retry" }
                }
            }
            div.player-controls hidden {
                button.player-play type="button" aria-label="Play" title="Play (k)" { span aria-hidden="true" { "▶" } }
                button.player-back type="button" aria-label="Back 10 seconds" title="Back 10 seconds (j)" { "−10" }
                button.player-forward type="button" aria-label="Forward 10 seconds" title="Forward 10 seconds (l)" { "+10" }
                label.visually-hidden for=(format!("seek-{}", v.id)) { "Position" }
                input.player-seek #(format!("seek-{}", v.id)) type="range" min="0" max="0" step="0.1" value="0";
                span.player-time aria-live="off" { "0:00 / 0:00" }
                button.player-mute type="button" aria-label="Mute" title="Mute (m)" { "🔊" }
                label.visually-hidden for=(format!("volume-{}", v.id)) { "Volume" }
                input.player-volume #(format!("volume-{}", v.id)) type="range" min="0" max="1" step="0.05" value="1";
                label.player-field {
                    span.visually-hidden { "Playback speed" }
                    select.player-speed title="Playback speed" {
                        @for s in ["0.5", "0.75", "1", "1.25", "1.5", "1.75", "2"] {
                            option value=(s) selected[s == "1"] { (s) "×" }
                        }
                    }
                }
                label.player-field {
                    span.visually-hidden { "Quality" }
                    select.player-quality title="Quality" { option value="auto" selected { "Auto" } }
                }
                label.player-field {
                    span.visually-hidden { "Captions" }
                    select.player-captions title="Captions (c)" {
                        option value="" { "Captions off" }
                        @for (i, t) in v.captions.iter().enumerate() {
                            option value=(i) { (t.label) }
                        }
                    }
                }
                @if !v.audio_only {
                    button.player-fullscreen type="button" aria-label="Full screen" title="Full screen (f)" { "⛶" }
                }
            }
            p.player-keys.muted {
                "Keys: space or k play/pause · j/l back/forward 10 s · ←/→ 5 s · ↑/↓ volume · f full screen · m mute · c captions"
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaptionRow {
    pub lang: String,
    pub label: String,
}

/// Caption tracks with Remove buttons, and the form to add one (both driven by `player.js`,
/// which asks for confirmation before removing).
pub fn caption_manager(id: i64, tracks: &[CaptionRow]) -> Markup {
    html! {
        section.captions-manager #captions data-media-id=(id) aria-labelledby="captions-heading" {
            h2 #captions-heading { "Captions" }
            @if tracks.is_empty() {
                p.muted { "No captions yet." }
            } @else {
                ul.caption-list {
                    @for t in tracks {
                        li {
                            span { (t.label) " " code { (t.lang) } }
                            " "
                            button.danger.caption-remove type="button" data-lang=(t.lang)
                                aria-label=(format!("Remove the {} captions", t.label)) { "Remove" }
                        }
                    }
                }
            }
            form.stack.caption-upload {
                div.form-error.caption-upload-error role="alert" hidden {}
                label for="caption-file" { "Caption file (WebVTT .vtt or SubRip .srt)" }
                input #caption-file name="file" type="file" accept=".vtt,.srt,text/vtt" required;
                label for="caption-lang" { "Language code" }
                input #caption-lang name="lang" type="text" required maxlength="35" placeholder="en"
                    aria-describedby="caption-lang-hint";
                p #caption-lang-hint.muted { "For example en, de, fr or pt-BR." }
                label for="caption-label" { "Name shown in the player (optional)" }
                input #caption-label name="label" type="text" maxlength="60" placeholder="English";
                p.actions { button.primary type="submit" { "Add captions" } }
            }
        }
    }
}

/// The "Embed" disclosure with the iframe code to copy.
pub fn embed_code(code: &str) -> Markup {
    html! {
        details.embed-code {
            summary.button { "Embed" }
            label for="embed-code-text" { "Paste this into your course page or website:" }
            textarea #embed-code-text readonly rows="3" { (code) }
            p.actions { button.embed-copy type="button" { "Copy code" } span.embed-copied role="status" {} }
        }
    }
}

/// `/embed/{id}`: the player alone, or a sign-in prompt that opens reelbox in a new tab.
pub fn embed_page(
    css_url: &str,
    js_url: &str,
    title: &str,
    player_view: Option<&PlayerView>,
    sign_in: &str,
    message: &str,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) }
                link rel="stylesheet" href=(css_url);
                @if player_view.is_some() { script src=(js_url) defer {} }
            }
            body.embed {
                main {
                    @if let Some(v) = player_view {
                        (player(v))
                    } @else {
                        div.embed-signin {
                            p { (message) }
                            p { a.button.primary href=(sign_in) target="_blank" rel="noopener" { "Sign in to reelbox (opens a new tab)" } }
                            p.muted { "After signing in, reload this page." }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_without_script_plays_the_download() {
        let v = PlayerView {
            id: 3,
            title: "Forces".into(),
            download: Some("/media/3/download.mp4".into()),
            master: Some("/media/3/hls/master.m3u8".into()),
            captions: vec![CaptionTrackView {
                lang: "en".into(),
                label: "English".into(),
                src: "/media/3/captions/en.vtt".into(),
            }],
            ..Default::default()
        };
        let html = player(&v).into_string();
        assert!(html.contains("<source src=\"/media/3/download.mp4\" type=\"video/mp4\">"), "{html}");
        assert!(
            html.contains(
                "<track kind=\"captions\" src=\"/media/3/captions/en.vtt\" srclang=\"en\" label=\"English\">"
            ),
            "{html}"
        );
        assert!(!html.contains("style="), "no inline style (CSP)");
        assert!(html.contains("aria-label=\"Play\""));
    }
}
