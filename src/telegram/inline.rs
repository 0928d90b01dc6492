//! Inline mode: knowledge entries as shareable cards for `@bot query` in any chat.

use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResult, InlineQueryResultArticle, InputMessageContent, InputMessageContentText,
    ParseMode,
};

use crate::content::Content;
use crate::engine::{self, Input, Session};

use super::render;
use super::sender::no_preview;

/// Knowledge entries matching an inline query, as shareable cards with a link back to the bot.
pub(super) fn inline_results(content: &Content, username: &str, query: &str, lang: &str) -> Vec<InlineQueryResult> {
    let label = content.message("button_open_bot", lang, &[]);
    content
        .index
        .top_entries(query, 10)
        .into_iter()
        .filter_map(|i| {
            let entry = &content.entries[i];
            let card =
                engine::step(content, &Session::new(lang), &Input::Button(format!("e:{}", entry.id)), 0).replies.into_iter().next()?;
            let text = render::render(&engine::Reply { buttons: Vec::new(), ..card }).into_iter().next()?.text;
            let texts = content.entry_text(entry, lang);
            let mut message = InputMessageContentText::new(text);
            message.parse_mode = Some(ParseMode::Html);
            message.link_preview_options = Some(no_preview());
            let mut article = InlineQueryResultArticle::new(entry.id.clone(), texts.name.clone(), InputMessageContent::Text(message));
            article.description = Some(texts.summary.clone());
            if let Ok(url) = reqwest::Url::parse(&format!("https://t.me/{username}?start={}", entry.id)) {
                article.reply_markup = Some(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::url(label.clone(), url)]]));
            }
            Some(InlineQueryResult::Article(article))
        })
        .collect()
}
